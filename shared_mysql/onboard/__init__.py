"""What a service needs to join the platform: the IAM policy of its task role and its CI workflow (issue 14)."""
