"""Serving's fast paths on River internals, behind one fence (`frozen.RIVER`).

`frozen.freeze` serves a River forest compiled (`compiled_trees`) with its vote weights read
once, when the installed river is on the allow-list and an agreement probe on small fitted
forests matches River's own answers; otherwise River's model serves, and one log line says why.
`COELHO_ACCEL=0` turns it off. Nothing outside this package reads River's private attributes.
"""
