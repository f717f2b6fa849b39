from specbench.cli import main

if __name__ == "__main__":  # Dask's worker processes are spawned and import the parent's main module
    raise SystemExit(main())
