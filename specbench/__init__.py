"""specbench: a benchmark suite that tests the claims of SNODE (Quaglino et al., ICLR 2020).

The public face is small: systems and trainers are found through their registries, datasets through
`make_dataset`, and a run through `protocol.run_job`. Everything else is an implementation detail.
"""
__version__ = "0.1.0"
