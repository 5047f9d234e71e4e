# The conformlab pytest plugin does the work (targets, fixtures, reports): src/conformlab/plugin/ (one module per concern).
# pyproject's addopts loads it with -p, early enough for "--target NAME" to be parsed as an option;
# naming it here as well keeps it loaded when pytest is started with -o addopts="" or another ini.
pytest_plugins = ["conformlab.plugin"]
