"""Pydantic models of the Batch AI 2018-05-01 resources (camelCase on the wire)."""
