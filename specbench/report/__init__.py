"""`specbench report DIR`: report.md, a self-contained report.html and PNG figures from run records, torch-free.

- `document`: the report built once as blocks and rendered twice (Markdown and HTML), and the README's verdict block;
- `board`: the verdict board of the report's first screen;
- `studies`: the scaling studies' sections and verdicts (C3 at scale, C4, C5, low data);
- `figures`: every figure, each trainer in one colour and line everywhere.
The verdicts themselves are `specbench.claims.verdicts`, which the gate reads too.
"""
