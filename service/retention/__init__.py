"""The retention job: deleting what the service no longer needs, in batches."""
