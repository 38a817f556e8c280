"""The planner: gather facts, diff resources against them, order the changes, render."""
