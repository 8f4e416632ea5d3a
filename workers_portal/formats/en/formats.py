"""One way to write a time across the portal and the admin: 2026-12-05 07:18:49 CET (the
user's zone, named), instead of the locale's "Dec. 5, 2026, 7:18 a.m."."""

DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
