"""Stock Tracker."""
