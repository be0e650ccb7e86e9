"""Files: VNN-LIB properties read into boxes and output rows, and region files written and read back."""
