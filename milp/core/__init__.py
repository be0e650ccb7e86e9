"""The values every later step shares: the network form, boxes, conditions, activation patterns,
regions, and the project-wide rules (errors, tolerances, deadlines, option checks, process set-up).

Pure numpy; imports nothing from the later steps.
"""
