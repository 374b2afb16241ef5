"""Reports built from collected `CaseResult`s: pure functions that return text."""
