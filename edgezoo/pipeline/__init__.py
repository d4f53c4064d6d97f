"""The planner (card + target + options -> a Plan checked before anything runs) and the
runner that executes a plan into a bundle."""
