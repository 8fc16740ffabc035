"""The factor factory: operators on (date, symbol) panels, the factor library, panel compute."""
