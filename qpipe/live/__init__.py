"""Live trading at the close: brokers, the data bridge, the trader (see DESIGN.md section 6)."""
