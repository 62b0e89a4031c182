"""Process management for the development stack: `make run` and the test fixtures."""
