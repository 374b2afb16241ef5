"""Importers: production traffic (and other suites) turned into case files and recordings.

Pure Python, no pytest: `llmgate import ...` (see `pytest_llmgate.cli`) calls
`pipeline.import_traffic`, which tests call directly too.
"""
