"""Click commands: parse, call edgezoo.api, render a table or --json. No pipeline logic here."""
