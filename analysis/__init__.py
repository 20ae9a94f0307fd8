"""Analysis: the match stage, the one point reader and filter, figures, statistics and evidence."""
