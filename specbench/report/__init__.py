"""`specbench report DIR`: report.md, a self-contained report.html and PNG figures from run records, torch-free.

- `document`: reads the records and decides every verdict once, then builds the report as blocks in its order;
- `render`: the blocks rendered twice (Markdown and HTML), so the two cannot disagree;
- `board`: the verdict board of the report's first screen and the summary made from it;
- `sections`: the headline sections; `study_sections`: the scaling studies' tables and figures;
- `readme`: the README's verdict block, from the same records and verdicts;
- `figures`: every figure, each trainer in one colour and line everywhere.
The verdicts are decided in `specbench.claims` (`verdicts`, `study_verdicts`), whose statistics the gate uses too.
"""
