"""The shipped conformance suite, collected by ``pytest --image=REPO:TAG`` when no test paths are given."""
