"""Backends: one adapter per wire schema; credentials kept apart from translation."""
