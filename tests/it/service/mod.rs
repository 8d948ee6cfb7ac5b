//! The whole service: the binary, the demo, acceptance scenarios, faults and outages.

mod acceptance;
mod binary;
mod demo;
mod faults;
mod outages;
