//! Platform health: the cycle, its routes and outages of its targets.

mod cycle;
mod health_outages;
