export const page = (path: string) => `<h1>${path}</h1>`;
