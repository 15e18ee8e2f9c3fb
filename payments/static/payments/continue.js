// Sends the family on to the payment provider's page as soon as our page has loaded. A link
// followed from a page is not a form submission, so the strict CSP's form-action 'self' does
// not stop the move to the provider's host. Without script, the link is there to click.
document.addEventListener("DOMContentLoaded", function () {
  var link = document.getElementById("continue-to-provider");
  if (link) {
    window.location.assign(link.href);
  }
});
