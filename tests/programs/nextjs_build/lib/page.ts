export const page = (path: string) => `<h1>${path}</h1>`;

export function refuse(reason: string): never {
  throw new TypeError(reason);
}
