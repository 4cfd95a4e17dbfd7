//! The local content-addressed cache: layout, atomic inserts, link strategies, shared permissions.
