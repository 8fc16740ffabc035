"""The Streamlit results viewer: a shell over the core that reads the lake (no analytics of
its own). Start it with ``qpipe viewer``."""
