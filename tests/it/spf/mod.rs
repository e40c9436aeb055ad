//! SPF as receivers compute it: the OpenSPF RFC 7208 test suite through `check_host()`
//! against the in-process DNS server, and `maildrift spf` through the binary.

mod cli;
mod rfc7208;
mod zonedata;
