"""Proofs: LP-tightened bounds, branch and bound over sub-boxes, the queries (fires, reach, range) and VNN-LIB verification."""
