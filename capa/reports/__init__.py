"""Documents made from a store: 8D record reports and the KPI dashboard."""
