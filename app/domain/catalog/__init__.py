"""Read side: products, variants, warehouses, stock, history, summary."""
