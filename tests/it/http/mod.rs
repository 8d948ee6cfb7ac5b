//! The HTTP interface: every route, hostile requests, status and the schema.

mod hostile_requests;
mod http_api;
mod monitors;
mod schema;
mod status_route;
