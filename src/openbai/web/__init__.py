"""The web file explorer and live-log page."""
