"""The paper's ablations (Tables 1-3): their rows and budgets, the runs, the report."""
