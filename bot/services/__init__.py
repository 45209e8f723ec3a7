"""The services directory: organisations, services and places, imported from HXL."""
