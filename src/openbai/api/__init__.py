"""The REST server in the shape of Microsoft.BatchAI 2018-05-01, plus streaming."""
