"""Server-rendered account pages on clinic hosts (and the platform host where a flow lives
there): the pages every emailed link opens (DESIGN.md §8). A thin layer over accounts.services,
never a second implementation of a flow."""
