"""Read models: projections of the event log that lists, overdue and the dashboard read."""
