//! Third-party Docker Hub API clients against a running hubmock (filled in below).
