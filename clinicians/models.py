"""Clinician profiles, care teams, notes, alerts and reports arrive with issue #7."""
