"""sweeper: finds mail that exposed many outside addresses in To/Cc instead of Bcc."""

__version__ = "0.1.0"
