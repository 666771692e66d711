export const title = "Acme";
