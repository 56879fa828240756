"""Real infrastructure started as child processes: the development stack and the test fixtures."""
