//! SVG plots, written by hand (no dependency): metrics over time, and a drawing of the
//! overlay for small networks.
