"""TillTap's server (imported as `tilltap`): ingest, storage, analysis, the operator API and
dashboard, and the `tilltap` command line. It imports the firmware's shared modules from the
package `tilltap_fw` (firmware/), like any other package."""
