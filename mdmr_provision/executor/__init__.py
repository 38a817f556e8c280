"""The executor: apply a plan's changes in dependency order, saving state per step."""
