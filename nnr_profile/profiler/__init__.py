"""What runs and observes trials: the runner (with its launchers), collectors, trace readers."""
