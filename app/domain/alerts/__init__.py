"""Alert rules (tenant default, product and product × warehouse overrides) and the alert lifecycle."""
