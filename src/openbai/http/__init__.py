"""What the REST API and the web page share over HTTP: the installation as a dependency and
openbai's errors as HTTP statuses."""
