// The console's own script: small, no framework. Pages add their behaviour below.
"use strict";
window.cdbot = {
  csrf: () => document.querySelector('meta[name="csrf-token"]').content,
};
