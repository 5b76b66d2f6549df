//! Whole-document tests through the public API only: convergence of two devices under
//! random interleavings, and a ten-year history.

#![allow(clippy::unwrap_used)] // a panic in a test is the failure report

mod convergence;
mod history;
mod ten_year;
