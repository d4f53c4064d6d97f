"""Plans, the executor that runs them, operator reports and microcontroller analysis."""
